#!/bin/sh
# Record a Tapo camera (H.264 as sent, PCMA audio as it is) to Matroska until Ctrl-C;
# camera reboots and freezes leave a gap, not an error. $1 = output file.
# CAM_URI=rtsp://user@ip:554/stream1, CAMSRC_PASSWORD from the environment.
exec gst-launch-1.0 -e camsrc uri="${CAM_URI:?rtsp://user@192.168.1.20:554/stream1}" name=cam \
  cam.video ! h264parse ! queue ! matroskamux name=mux streamable=true ! filesink location="${1:-tapo.mkv}" \
  cam.audio ! queue ! mux.audio_0
