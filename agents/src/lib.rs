//! Logic of the bulwark OCF resource agents; the binaries in agents/bin are thin mains.
