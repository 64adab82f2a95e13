//! What the agent reads from Redfish resources: the service root's Systems link, the
//! members of the Systems collection, a ComputerSystem's PowerState and its
//! `#ComputerSystem.Reset` action (target and allowed ResetTypes). Pure functions on
//! JSON, so every shape is unit-tested.

use super::RedfishError;
use ocf_metadata::fence::opts::printable;
use ocf_metadata::fence::Power;
use serde_json::Value;

fn odata_id(v: &Value) -> Option<&str> {
    v.get("@odata.id").and_then(Value::as_str)
}

/// `Systems.@odata.id` of the service root.
pub fn systems_link(root: &Value, root_path: &str) -> Result<String, RedfishError> {
    root.get("Systems")
        .and_then(odata_id)
        .map(str::to_string)
        .ok_or_else(|| {
            RedfishError::Protocol(format!(
                "the service root {root_path} has no Systems collection (not a Redfish \
                 service with computer systems?); set systems_uri"
            ))
        })
}

/// The `@odata.id` of every member of a collection.
pub fn members(collection: &Value, path: &str) -> Result<Vec<String>, RedfishError> {
    let list = collection
        .get("Members")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            RedfishError::Protocol(format!("the collection {path} has no Members list"))
        })?;
    list.iter()
        .map(|m| {
            odata_id(m).map(str::to_string).ok_or_else(|| {
                RedfishError::Protocol(format!(
                    "a member of {path} has no @odata.id: {}",
                    printable(&m.to_string())
                ))
            })
        })
        .collect()
}

/// Picks the one system; several members without `systems_uri` is an error that lists
/// them (never a guess: fencing the wrong node is worse than not fencing).
pub fn only_member(members: &[String], path: &str, more: bool) -> Result<String, RedfishError> {
    match members {
        [] => Err(RedfishError::NotFound(format!(
            "the Systems collection {path} is empty: the BMC manages no computer system"
        ))),
        [one] if !more => Ok(one.clone()),
        _ => {
            let shown: Vec<String> = members.iter().map(|m| printable(m)).collect();
            Err(RedfishError::Config(format!(
                "the BMC manages {}{} systems ({}{}); choose one with systems_uri",
                if more { "more than " } else { "" },
                members.len(),
                shown.join(", "),
                if more { ", ..." } else { "" }
            )))
        }
    }
}

/// Whether a collection says it has more members than it listed (paging).
pub fn has_more(collection: &Value) -> bool {
    collection.get("Members@odata.nextLink").is_some()
        || collection
            .get("Members@odata.count")
            .and_then(Value::as_u64)
            .zip(collection.get("Members").and_then(Value::as_array))
            .is_some_and(|(n, l)| n as usize > l.len())
}

/// The power state of a `PowerState` value. Only `Off` is off: `PoweringOff` is not
/// off yet and `PoweringOn` or `Paused` are not off any more (as fence_redfish).
pub fn power_of(state: &str) -> Option<Power> {
    match state.trim() {
        "Off" => Some(Power::Off),
        "On" | "PoweringOn" | "PoweringOff" | "Paused" => Some(Power::On),
        _ => None,
    }
}

/// A ComputerSystem as far as fencing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct System {
    pub power_state: Option<String>,
    /// `Actions.#ComputerSystem.Reset.target`.
    pub reset_target: Option<String>,
    /// `ResetType@Redfish.AllowableValues`, when listed in the resource.
    pub reset_types: Option<Vec<String>>,
    /// `@Redfish.ActionInfo`, where some BMCs list the allowed values instead.
    pub action_info: Option<String>,
}

pub fn parse_system(v: &Value) -> System {
    let reset = v
        .get("Actions")
        .and_then(|a| a.get("#ComputerSystem.Reset"));
    System {
        power_state: v
            .get("PowerState")
            .and_then(Value::as_str)
            .map(str::to_string),
        reset_target: reset
            .and_then(|r| r.get("target"))
            .and_then(Value::as_str)
            .map(str::to_string),
        reset_types: reset
            .and_then(|r| r.get("ResetType@Redfish.AllowableValues"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
        action_info: reset
            .and_then(|r| r.get("@Redfish.ActionInfo"))
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// The allowed ResetType values of an ActionInfo resource (`Parameters[]` with
/// `Name` = `ResetType`).
pub fn action_info_reset_types(v: &Value) -> Option<Vec<String>> {
    v.get("Parameters")?
        .as_array()?
        .iter()
        .find(|p| p.get("Name").and_then(Value::as_str) == Some("ResetType"))?
        .get("AllowableValues")?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
}

/// What the agent asks of the reset action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    On,
    Off,
    Cycle,
}

impl Want {
    /// The ResetTypes that do this, best first. Only forced or plain ones: a fence must
    /// not depend on the node's operating system cooperating, so GracefulShutdown and
    /// GracefulRestart are never chosen.
    pub fn preferences(self) -> &'static [&'static str] {
        match self {
            Want::On => &["On", "ForceOn"],
            Want::Off => &["ForceOff"],
            Want::Cycle => &["ForceRestart", "PowerCycle"],
        }
    }
}

/// The ResetType to send: the first preference the BMC advertises; without a list,
/// the standard first choice.
pub fn choose_reset(allowed: Option<&[String]>, want: Want) -> Result<&'static str, RedfishError> {
    let prefs = want.preferences();
    let Some(allowed) = allowed else {
        return Ok(prefs[0]);
    };
    if let Some(p) = prefs.iter().find(|p| allowed.iter().any(|a| a == *p)) {
        return Ok(p);
    }
    let graceful = match want {
        Want::Off => allowed.iter().any(|a| a == "GracefulShutdown"),
        Want::Cycle => allowed.iter().any(|a| a == "GracefulRestart"),
        Want::On => false,
    };
    let shown: Vec<String> = allowed.iter().map(|a| printable(a)).collect();
    Err(RedfishError::Device(format!(
        "the BMC does not offer {} for ComputerSystem.Reset (it offers: {}){}",
        prefs.join(" or "),
        if shown.is_empty() {
            "nothing".to_string()
        } else {
            shown.join(", ")
        },
        if graceful {
            "; graceful resets need the node's cooperation and are not used for fencing"
        } else {
            ""
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn discovery_shapes() {
        let root = json!({"Systems": {"@odata.id": "/redfish/v1/Systems"}});
        assert_eq!(
            systems_link(&root, "/redfish/v1").unwrap(),
            "/redfish/v1/Systems"
        );
        assert!(systems_link(&json!({}), "/redfish/v1")
            .unwrap_err()
            .to_string()
            .contains("no Systems collection"));
        let one = json!({"Members": [{"@odata.id": "/redfish/v1/Systems/1"}]});
        let m = members(&one, "/redfish/v1/Systems").unwrap();
        assert_eq!(
            only_member(&m, "/s", has_more(&one)).unwrap(),
            "/redfish/v1/Systems/1"
        );
        let two = json!({"Members": [{"@odata.id": "/s/a"}, {"@odata.id": "/s/b"}]});
        let m = members(&two, "/s").unwrap();
        let e = only_member(&m, "/s", false).unwrap_err().to_string();
        assert_eq!(
            e,
            "the BMC manages 2 systems (/s/a, /s/b); choose one with systems_uri"
        );
        let paged = json!({"Members@odata.count": 40, "Members": [{"@odata.id": "/s/a"}]});
        assert!(has_more(&paged));
        let m = members(&paged, "/s").unwrap();
        assert!(only_member(&m, "/s", true)
            .unwrap_err()
            .to_string()
            .contains("more than 1 systems (/s/a, ...)"));
        assert!(only_member(&[], "/s", false)
            .unwrap_err()
            .to_string()
            .contains("is empty"));
        assert!(members(&json!({"Members": [{}]}), "/s").is_err());
        assert!(members(&json!({"Members": 3}), "/s").is_err());
    }

    #[test]
    fn power_states() {
        assert_eq!(power_of("Off"), Some(Power::Off));
        assert_eq!(power_of("On"), Some(Power::On));
        assert_eq!(power_of("PoweringOff"), Some(Power::On), "not off yet");
        assert_eq!(power_of("PoweringOn"), Some(Power::On));
        assert_eq!(power_of("Paused"), Some(Power::On));
        assert_eq!(power_of("off"), None);
        assert_eq!(power_of(""), None);
    }

    #[test]
    fn system_actions() {
        let s = parse_system(&json!({
            "PowerState": "On",
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulRestart", 7]
            }}
        }));
        assert_eq!(s.power_state.as_deref(), Some("On"));
        assert_eq!(
            s.reset_target.as_deref(),
            Some("/redfish/v1/Systems/1/Actions/ComputerSystem.Reset")
        );
        assert_eq!(
            s.reset_types.as_deref().unwrap(),
            ["On", "ForceOff", "GracefulRestart"]
        );
        let s = parse_system(&json!({"Actions": {"#ComputerSystem.Reset": {
            "target": "/t", "@Redfish.ActionInfo": "/redfish/v1/Systems/1/ResetActionInfo"}}}));
        assert_eq!(s.power_state, None);
        assert_eq!(s.reset_types, None);
        assert_eq!(
            s.action_info.as_deref(),
            Some("/redfish/v1/Systems/1/ResetActionInfo")
        );
        let info = json!({"Parameters": [
            {"Name": "Other", "AllowableValues": ["x"]},
            {"Name": "ResetType", "Required": true, "AllowableValues": ["ForceOn", "ForceOff", "PowerCycle"]}
        ]});
        assert_eq!(
            action_info_reset_types(&info).unwrap(),
            ["ForceOn", "ForceOff", "PowerCycle"]
        );
        assert_eq!(action_info_reset_types(&json!({})), None);
    }

    #[test]
    fn reset_type_choice() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = v(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn",
        ]);
        assert_eq!(choose_reset(Some(&all), Want::On).unwrap(), "On");
        assert_eq!(choose_reset(Some(&all), Want::Off).unwrap(), "ForceOff");
        assert_eq!(
            choose_reset(Some(&all), Want::Cycle).unwrap(),
            "ForceRestart"
        );
        let odd = v(&["ForceOn", "ForceOff", "PowerCycle"]);
        assert_eq!(choose_reset(Some(&odd), Want::On).unwrap(), "ForceOn");
        assert_eq!(choose_reset(Some(&odd), Want::Cycle).unwrap(), "PowerCycle");
        assert_eq!(choose_reset(None, Want::Off).unwrap(), "ForceOff");
        let graceful = v(&["On", "GracefulShutdown", "GracefulRestart"]);
        let e = choose_reset(Some(&graceful), Want::Off)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not offer ForceOff"), "{e}");
        assert!(e.contains("not used for fencing"), "{e}");
        let e = choose_reset(Some(&graceful), Want::Cycle)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ForceRestart or PowerCycle"), "{e}");
        assert!(choose_reset(Some(&[]), Want::On)
            .unwrap_err()
            .to_string()
            .contains("offers: nothing"));
    }
}
