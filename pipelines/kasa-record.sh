#!/bin/sh
# Record a Kasa camera (video as sent, audio as mu-law) to a Matroska file until Ctrl-C.
# KASA_IP, KASA_USER, KASA_PASSWORD from the environment; $1 = output file.
exec gst-launch-1.0 -e kasasrc ip="${KASA_IP:?}" username="${KASA_USER:-admin}" name=cam \
  cam.video ! h264parse ! queue ! matroskamux name=mux streamable=true ! filesink location="${1:-kasa.mkv}" \
  cam.audio ! queue ! mux.audio_0
