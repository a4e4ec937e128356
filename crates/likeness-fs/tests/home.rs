//! The one home-folder resolver. Environment variables are process-wide, so every case runs in
//! this one test, in order.

use std::path::PathBuf;

use likeness_fs::{FsError, home_dir};

#[test]
fn likeness_home_wins_then_home_then_an_error() {
    // SAFETY of set_var/remove_var: this test binary has one test and no other threads read
    // the environment meanwhile.
    unsafe {
        std::env::set_var("LIKENESS_HOME", "/tmp/elsewhere");
        std::env::set_var("HOME", "/home/someone");
    }
    assert_eq!(home_dir().unwrap(), PathBuf::from("/tmp/elsewhere"));
    unsafe { std::env::set_var("LIKENESS_HOME", "") };
    assert_eq!(
        home_dir().unwrap(),
        PathBuf::from("/home/someone/.cache/likeness")
    );
    unsafe {
        std::env::remove_var("LIKENESS_HOME");
        std::env::remove_var("HOME");
    }
    assert!(matches!(home_dir(), Err(FsError::NoHome)));
}
