//! The operator's subcommands besides `serve`: each file is one command, its flags and its run.

pub mod backup;
pub mod hash_password;
pub mod healthcheck;
