#!/bin/sh
# Watch a Kasa camera with sound. KASA_IP, KASA_USER, KASA_PASSWORD from the environment.
exec gst-launch-1.0 kasasrc ip="${KASA_IP:?}" username="${KASA_USER:-admin}" name=cam \
  cam.video ! queue ! decodebin ! videoconvert ! autovideosink \
  cam.audio ! queue ! decodebin ! audioconvert ! audioresample ! autoaudiosink
