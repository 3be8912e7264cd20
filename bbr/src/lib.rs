//! Body-Based Router (BBR): an Envoy ext_proc server that routes by the model named in the body.
