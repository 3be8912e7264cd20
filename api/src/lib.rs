//! Switchyard API: CRD types and the protocol names shared by every component.
