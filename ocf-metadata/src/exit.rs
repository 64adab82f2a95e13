//! OCF exit codes (resource-agent API 1.1, section "return codes").

use std::fmt;

/// Every exit code an OCF resource agent may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OcfExit {
    /// 0: success; for monitor, running.
    Success = 0,
    /// 1: generic error; for monitor, failed or undetermined.
    ErrGeneric = 1,
    /// 2: parameters invalid *for this host*: Pacemaker tries elsewhere.
    ErrArgs = 2,
    /// 3: action not implemented.
    ErrUnimplemented = 3,
    /// 4: insufficient privilege.
    ErrPerm = 4,
    /// 5: needed software or facility missing on this host.
    ErrInstalled = 5,
    /// 6: parameters inherently invalid: do not retry anywhere.
    ErrConfigured = 6,
    /// 7: cleanly stopped (monitor only).
    NotRunning = 7,
    /// 8: running promoted.
    RunningPromoted = 8,
    /// 9: promoted but failed.
    FailedPromoted = 9,
    /// 190: running, but failure more likely (OCF 1.1).
    Degraded = 190,
    /// 191: promoted and degraded (OCF 1.1).
    DegradedPromoted = 191,
}

impl OcfExit {
    pub const ALL: [OcfExit; 12] = [
        OcfExit::Success,
        OcfExit::ErrGeneric,
        OcfExit::ErrArgs,
        OcfExit::ErrUnimplemented,
        OcfExit::ErrPerm,
        OcfExit::ErrInstalled,
        OcfExit::ErrConfigured,
        OcfExit::NotRunning,
        OcfExit::RunningPromoted,
        OcfExit::FailedPromoted,
        OcfExit::Degraded,
        OcfExit::DegradedPromoted,
    ];

    /// The numeric process exit status.
    pub fn code(self) -> i32 {
        self as u8 as i32
    }

    /// The resource-agents shell name (`OCF_SUCCESS`, ...).
    pub fn name(self) -> &'static str {
        match self {
            OcfExit::Success => "OCF_SUCCESS",
            OcfExit::ErrGeneric => "OCF_ERR_GENERIC",
            OcfExit::ErrArgs => "OCF_ERR_ARGS",
            OcfExit::ErrUnimplemented => "OCF_ERR_UNIMPLEMENTED",
            OcfExit::ErrPerm => "OCF_ERR_PERM",
            OcfExit::ErrInstalled => "OCF_ERR_INSTALLED",
            OcfExit::ErrConfigured => "OCF_ERR_CONFIGURED",
            OcfExit::NotRunning => "OCF_NOT_RUNNING",
            OcfExit::RunningPromoted => "OCF_RUNNING_PROMOTED",
            OcfExit::FailedPromoted => "OCF_FAILED_PROMOTED",
            OcfExit::Degraded => "OCF_DEGRADED",
            OcfExit::DegradedPromoted => "OCF_DEGRADED_PROMOTED",
        }
    }

    pub fn from_code(code: i32) -> Option<OcfExit> {
        OcfExit::ALL.into_iter().find(|e| e.code() == code)
    }
}

impl fmt::Display for OcfExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_the_spec() {
        let expect = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191];
        for (e, c) in OcfExit::ALL.iter().zip(expect) {
            assert_eq!(e.code(), c);
            assert_eq!(OcfExit::from_code(c), Some(*e));
        }
        assert_eq!(OcfExit::from_code(10), None);
        assert_eq!(OcfExit::from_code(189), None);
    }
}
