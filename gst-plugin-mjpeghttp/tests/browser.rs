//! A real browser: Debian's headless Chromium, driven over the DevTools protocol by this
//! test, loads the index page that mjpeghttpsink serves from the simulated Tapo camera
//! (tapo-sim ! camsrc ! decodebin ! jpegenc ! mjpeghttpsink) and takes two screenshots
//! a second apart. The picture must not be blank, and must move.

use gst::prelude::*;
use std::time::{Duration, Instant};

fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

#[test]
fn chromium_shows_the_live_camera() {
    gst::init().unwrap();
    gstcamsrc::plugin_register_static().unwrap();
    gstmjpeghttp::plugin_register_static().unwrap();
    // A ball on a lit background: a picture that is neither blank nor still.
    let tapo = tapo_sim::process::TapoProcess::start(
        &target_dir().join("tapo-sim"),
        "pw",
        &[
            "--pattern",
            "pattern=ball motion=wavy background-color=0xff405030",
        ],
    );
    let desc = format!(
        "camsrc uri={} audio=false ! decodebin ! videoconvert ! jpegenc quality=80 \
         ! mjpeghttpsink name=s port=0 address=127.0.0.1 title=Yard",
        tapo.uri("pw")
    );
    let pipeline = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sink = pipeline.by_name("s").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink
        .property::<gst::Structure>("stats")
        .get::<u64>("frames-in")
        .unwrap()
        < 5
    {
        assert!(Instant::now() < deadline, "no frames from the camera");
        std::thread::sleep(Duration::from_millis(50));
    }
    let port = sink.property::<u32>("bound-port");

    let mut browser = test_browser::Browser::launch(640, 360);
    let session = browser.open(&format!("http://127.0.0.1:{port}/"));
    // The page title comes from the element's `title`; the <img> knows the camera's size
    // once the first part has arrived.
    browser.wait_for(
        &session,
        "document.title + '|' + (document.getElementById('live') ? document.getElementById('live').naturalWidth : -1) == 'Yard|640'",
        Duration::from_secs(15),
        "the page shows the stream",
    );
    let a = browser.screenshot(&session);
    std::thread::sleep(Duration::from_secs(1));
    let b = browser.screenshot(&session);
    drop(browser);
    pipeline.set_state(gst::State::Null).unwrap();
    let (w, h) = (a.width, a.height);
    assert!(w >= 320 && h >= 180, "{w}x{h}");
    // Not blank: the simulator's picture has many distinct colours.
    let (colours, lit) = a.colours_and_lit();
    let total = a.pixels();
    assert!(
        colours > 20 && lit * 100 > total,
        "blank screenshot: {colours} colours, {lit} of {total} pixels lit"
    );
    // Live: the second screenshot differs.
    let changed = a.changed(&b, 24);
    eprintln!(
        "screenshots {w}x{h}: {colours} colours, {lit} lit pixels, {changed} pixels changed in 1 s"
    );
    assert!(
        changed * 1000 > total,
        "the picture did not move: {changed} of {total} pixels changed"
    );
}
