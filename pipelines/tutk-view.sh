#!/bin/sh
# A TUTK/Kalay camera through camsrc, once tutksrc (gst-plugin-tutksrc) is installed;
# until then camsrc says that no element handles tutk:// URIs.
# CAM_URI=tutk://admin@UID, CAMSRC_PASSWORD from the environment.
exec gst-launch-1.0 camsrc uri="${CAM_URI:?tutk://admin@HBNASLSCFC1MN4Y9221A}" name=cam \
  cam.video ! queue ! decodebin ! videoconvert ! autovideosink
