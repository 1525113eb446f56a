//! The one integration-test binary: each module runs the real `chroma-snap` binary.

mod transform;
