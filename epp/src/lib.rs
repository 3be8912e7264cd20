//! Endpoint Picker (EPP): a per-InferencePool ext_proc server that picks the best model server.
