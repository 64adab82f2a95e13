//! The fence-agents argument API (stdin `name=value` lines or getopt options, one option
//! table, metadata in the fence-agents format). Filled in by the fence_bulwark_ipmi work.
