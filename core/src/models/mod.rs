//! Model definitions: hyper-parameters and the forward pass over backend ops.

pub mod lfm2;
