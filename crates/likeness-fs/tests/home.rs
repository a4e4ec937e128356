//! The one home-folder resolver. Environment variables are process-wide, so every case runs in
//! this one test, in order.

#![allow(unsafe_code)] // set_var and remove_var are unsafe in edition 2024

use std::path::PathBuf;

use likeness_fs::{FsError, home_dir};

#[test]
fn likeness_home_wins_then_home_then_an_error() {
    // SAFETY: set_var/remove_var race only with other threads reading the environment; this
    // test binary has one test and no other threads.
    unsafe {
        std::env::set_var("LIKENESS_HOME", "/tmp/elsewhere");
        std::env::set_var("HOME", "/home/someone");
    }
    assert_eq!(home_dir().unwrap(), PathBuf::from("/tmp/elsewhere"));
    // SAFETY: as above, one thread.
    unsafe { std::env::set_var("LIKENESS_HOME", "") };
    assert_eq!(
        home_dir().unwrap(),
        PathBuf::from("/home/someone/.cache/likeness")
    );
    // SAFETY: as above, one thread.
    unsafe {
        std::env::remove_var("LIKENESS_HOME");
        std::env::remove_var("HOME");
    }
    assert!(matches!(home_dir(), Err(FsError::NoHome)));
}
