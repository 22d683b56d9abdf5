#!/bin/sh
# Watch a TUTK/Kalay camera. The vendor SDK is not shipped: TUTK_LIBRARY_PATH names it
# (libIOTCAPIs_ALL.so or its folder). The password comes from TUTK_PASSWORD, so it is
# in neither the command line nor GStreamer's logs. LAN sessions only; add
# allow-remote=true to accept P2P/relay (the password then crosses the vendor's servers).
#   TUTK_PASSWORD=... TUTK_UID=HBNASLSCFC1MN4Y9221A pipelines/tutk-view.sh
exec gst-launch-1.0 tutksrc uid="${TUTK_UID:?set TUTK_UID to the camera UID}" username="${TUTK_USER:-admin}" name=t \
  t.video ! queue ! h264parse ! avdec_h264 ! videoconvert ! autovideosink \
  t.audio ! queue ! decodebin ! audioconvert ! autoaudiosink
