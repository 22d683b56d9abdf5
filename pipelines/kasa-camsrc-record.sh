#!/bin/sh
# The same recording for a Kasa camera through camsrc (kasasrc inside): one pipeline
# shape for every camera kind. CAM_URI=kasa://me%40example.com@192.168.1.209,
# CAMSRC_PASSWORD from the environment. $1 = output file.
exec gst-launch-1.0 -e camsrc uri="${CAM_URI:?kasa://user@192.168.1.209}" name=cam \
  cam.video ! h264parse ! queue ! matroskamux name=mux streamable=true ! filesink location="${1:-kasa.mkv}" \
  cam.audio ! queue ! mux.audio_0
