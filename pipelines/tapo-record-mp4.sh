#!/bin/sh
# Record to fragmented MP4 (playable even after a crash, up to the last 1 s fragment).
# mp4mux in GStreamer 1.22 takes no G.711, so the audio is transcoded to AAC; the video
# is never re-encoded. $1 = output file.
exec gst-launch-1.0 -e camsrc uri="${CAM_URI:?rtsp://user@192.168.1.20:554/stream1}" name=cam \
  cam.video ! h264parse ! queue ! mp4mux name=mux fragment-duration=1000 ! filesink location="${1:-tapo.mp4}" \
  cam.audio ! queue ! decodebin ! audioconvert ! audioresample ! avenc_aac ! aacparse ! mux.audio_0
