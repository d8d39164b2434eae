//! One module per page of the console.

pub mod approvals;
pub mod dashboard;
pub mod editor;
pub mod operations;
pub mod runs;
pub mod tickets;
pub mod workflows;
