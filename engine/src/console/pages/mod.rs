//! One module per page of the console.

pub mod approvals;
pub mod dashboard;
pub mod editor;
pub mod link;
pub mod operations;
pub mod plugins;
pub mod runs;
pub mod tickets;
pub mod workflows;
