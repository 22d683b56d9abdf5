//! One process-wide SDK initialisation, reference-counted, tolerating "already
//! initialised" from another user of the library in the process. Its own test binary:
//! it initialises and deinitialises the fake SDK, which must not happen under another
//! test's session.

mod common;

use std::os::raw::{c_int, c_ushort};

#[test]
fn initialised_once_released_by_the_last_user() {
    let path = common::fake_library();
    let sdk = tutk::Sdk::load(Some(&path)).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&sdk, &tutk::Sdk::load(Some(&path)).unwrap()),
        "loaded once"
    );
    // The same library, as the test sees it (dlopen hands out the one instance).
    let lib = unsafe { libloading::Library::new(&path) }.unwrap();
    let initialised =
        unsafe { lib.get::<unsafe extern "C" fn() -> c_int>(b"fake_tutk_initialised\0") }.unwrap();
    let iotc_init =
        unsafe { lib.get::<unsafe extern "C" fn(c_ushort) -> c_int>(b"IOTC_Initialize2\0") }
            .unwrap();
    let deinit =
        unsafe { lib.get::<unsafe extern "C" fn() -> c_int>(b"IOTC_DeInitialize\0") }.unwrap();

    let a = sdk.acquire(None).unwrap();
    assert_eq!(unsafe { initialised() }, 1);
    let b = sdk.acquire(None).unwrap();
    assert_eq!(sdk.users(), 2);
    drop(a);
    assert_eq!(unsafe { initialised() }, 1, "still used by b");
    drop(b);
    assert_eq!(sdk.users(), 0);
    assert_eq!(
        unsafe { initialised() },
        0,
        "deinitialised by the last user"
    );

    // Someone else in the process initialised it first: IOTC_ER_ALREADY_INITIALIZED.
    assert_eq!(unsafe { iotc_init(0) }, 0);
    assert_eq!(
        unsafe { iotc_init(0) },
        tutk::ffi::IOTC_ER_ALREADY_INITIALIZED
    );
    let c = sdk.acquire(None).expect("already initialised is fine");
    drop(c);
    unsafe { deinit() };
}
