#!/bin/sh
# Watch a Tapo (or any RTSP) camera through camsrc, which reconnects on its own when the
# camera stalls or reboots. CAM_URI without the password (rtsp://user@ip:554/stream1,
# /stream2 for 640x360); CAMSRC_PASSWORD from the environment keeps the password out of
# gst-launch's debug log.
exec gst-launch-1.0 camsrc uri="${CAM_URI:?rtsp://user@192.168.1.20:554/stream1}" name=cam \
  cam.video ! queue ! decodebin ! videoconvert ! autovideosink \
  cam.audio ! queue ! decodebin ! audioconvert ! audioresample ! autoaudiosink
