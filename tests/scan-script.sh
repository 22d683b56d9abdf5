#!/usr/bin/env bash
# scripts/scan finds each kind of camera, on a network of its own: every datagram stays
# inside network namespaces this test creates (a "LAN" namespace holding the simulated
# cameras, and a client namespace joined to it by a veth pair), never on the machine's
# network. Checked: the Kasa broadcast and per-address probes, ONVIF WS-Discovery, the
# TUTK SDK's search (the fake SDK), the table, --json and --config, malformed answers
# (truncated, wrong key, huge), two devices with one MAC, a silent network, and a
# network with no route to send on.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export CAM_SKIP_SETUP=1
cargo build --quiet -p kasa-sim -p tapo-sim -p tutk-fake-sdk
bash scripts/scan --help > /dev/null   # builds the release cam while the network is there
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/tutk"
printf 'uid = HBNASLSCFC1MN4Y9221A\nip = 10.77.0.9\nport = 32761\nname = garage-cam\nusername = admin\npassword = demo\n' > "$tmp/tutk/HBNASLSCFC1MN4Y9221A.conf"
export TMP="$tmp" ROOT="$root"

unshare --net bash -euo pipefail <<'LAN'
bin="$ROOT/target/debug"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
ip link set lo up
# The client: a namespace of its own, reached by a veth pair.
unshare --net sleep 300 & client=$!
pids+=($client)
sleep 0.3
in_client() { nsenter -t "$client" -n "$@"; }
scan() { in_client env TUTK_LIBRARY_PATH="$bin/libtutk_fake_sdk.so" TUTK_FAKE_DIR="$TMP/tutk" bash "$ROOT/scripts/scan" "$@"; }
ip link add lan0 type veth peer name client0
ip link set client0 netns "$client"
for a in 2 3 4 5 6 7 8; do ip addr add "10.77.0.$a/24" brd + dev lan0; done
ip link set lan0 up
in_client ip link set lo up
in_client ip addr add 10.77.0.1/24 brd + dev client0
in_client ip link set client0 up
in_client ip route add default dev client0

# A silent network: every method says it found nothing, the scan still succeeds.
scan --timeout 0.5 > "$TMP/silent.txt"
cat "$TMP/silent.txt"
grep -q "^kasa: nothing answered within 0.5 s" "$TMP/silent.txt"
grep -q "^onvif: nothing answered within 0.5 s" "$TMP/silent.txt"
grep -q "^tutk: 1 device" "$TMP/silent.txt"
# No route to send on: a clear line per method, exit 1.
set +e
unshare --net env TUTK_LIBRARY_PATH=/nonexistent "$ROOT/target/release/cam" scan --timeout 0.3 --only kasa,onvif > "$TMP/noroute.txt" 2>&1
code=$?
set -e
cat "$TMP/noroute.txt"
[ "$code" = 1 ]
grep -q "^kasa: could not send: broadcast to 255.255.255.255:9999" "$TMP/noroute.txt"
grep -q "^onvif: could not send" "$TMP/noroute.txt"

# The cameras. 10.77.0.2 hears broadcasts; .3 and .4 (one MAC for two devices) and the
# faulty ones only per-address probes; .5 is a Tapo C210 answering WS-Discovery.
"$bin/kasa-sim" --bind 10.77.0.2 --user you@example.com --size 320x240 --fps 5 --no-audio --discovery 0.0.0.0:9999 --model "EC60(US)" --alias "Front door" --mac 50c7bf000002 > /dev/null & pids+=($!)
"$bin/kasa-sim" --discovery-only --discovery 10.77.0.3:9999 --model "KC120(US)" --alias "Garden" --mac 50:C7:BF:00:00:33 > /dev/null & pids+=($!)
"$bin/kasa-sim" --discovery-only --discovery 10.77.0.4:9999 --model "HS100(UK)" --type IOT.SMARTPLUGSWITCH --alias "Lamp" --mac 50:C7:BF:00:00:33 > /dev/null & pids+=($!)
"$bin/kasa-sim" --discovery-only --discovery 10.77.0.6:9999 --discovery-fault truncated > /dev/null & pids+=($!)
"$bin/kasa-sim" --discovery-only --discovery 10.77.0.7:9999 --discovery-fault wrong-key > /dev/null & pids+=($!)
"$bin/kasa-sim" --discovery-only --discovery 10.77.0.8:9999 --discovery-fault huge --alias big --mac 50:C7:BF:00:00:88 > /dev/null & pids+=($!)
"$bin/tapo-sim" --onvif-only --onvif 10.77.0.5 --model C210 --location "Back yard" > /dev/null & pids+=($!)
sleep 0.5

# Broadcast only: the one camera that hears broadcasts, and the Tapo.
scan --timeout 1 > "$TMP/table.txt"
cat "$TMP/table.txt"
grep -Eq "^kasa +10\.77\.0\.2 +EC60\(US\) +Front door +50:C7:BF:00:00:02 +kasa://10\.77\.0\.2$" "$TMP/table.txt"
grep -Eq "^onvif +10\.77\.0\.5 +C210 +Back yard +uuid:[0-9a-f-]+ +rtsp://10\.77\.0\.5:554/stream1$" "$TMP/table.txt"
grep -Eq "^tutk +10\.77\.0\.9 +- +garage-cam +HBNASLSCFC1MN4Y9221A +tutk://HBNASLSCFC1MN4Y9221A$" "$TMP/table.txt"
grep -q "^kasa: 1 device (UDP 9999 broadcast to 255.255.255.255)" "$TMP/table.txt"
! grep -q "10.77.0.3" "$TMP/table.txt"

# With --subnet: every simulated device, the malformed answers counted and described,
# the shared MAC reported as a conflict and the two devices kept apart.
scan --timeout 1 --subnet 10.77.0.0/24 --json > "$TMP/scan.json"
python3 - "$TMP/scan.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
by = {(c["kind"], c["ip"]): c for c in r["cameras"]}
assert set(by) == {("kasa", "10.77.0.2"), ("kasa", "10.77.0.3"), ("kasa", "10.77.0.4"),
                   ("kasa", "10.77.0.8"), ("onvif", "10.77.0.5"), ("tutk", "10.77.0.9")}, sorted(by)
front = by["kasa", "10.77.0.2"]
assert front["camera"] and front["model"] == "EC60(US)" and front["name"] == "Front door", front
assert front["mac"] == "50:C7:BF:00:00:02" and front["uri"] == "kasa://10.77.0.2", front
lamp = by["kasa", "10.77.0.4"]
assert not lamp["camera"] and lamp["uri"] is None and "not a camera" in lamp["note"], lamp
assert by["kasa", "10.77.0.3"]["camera"] and "claimed by another device" in by["kasa", "10.77.0.3"]["note"]
assert len(by["kasa", "10.77.0.8"]["name"]) == 64, "a huge alias is cut"
tapo = by["onvif", "10.77.0.5"]
assert tapo["model"] == "C210" and tapo["uri"] == "rtsp://10.77.0.5:554/stream1", tapo
m = {x["method"]: x for x in r["methods"]}
assert m["kasa"]["found"] == 4 and "2 malformed answers ignored" in m["kasa"]["message"], m["kasa"]
assert len(m["kasa"]["malformed"]) == 2 and all("not the encoded JSON" in b for b in m["kasa"]["malformed"]), m["kasa"]
assert m["onvif"]["outcome"] == "found" and m["tutk"]["outcome"] == "found", m
assert any("50:C7:BF:00:00:33" in c and "10.77.0.3 and 10.77.0.4" in c for c in r["conflicts"]), r["conflicts"]
print("scan json: ok")
PY

# --config: blocks homecam accepts, no passwords, placeholders to fill in.
scan --timeout 1 --subnet 10.77.0.0/24 --config > "$TMP/cams.toml"
cat "$TMP/cams.toml"
grep -q '^uri = "kasa://you%40example.com@10.77.0.2"$' "$TMP/cams.toml"
grep -q '^name = "front-door"$' "$TMP/cams.toml"
grep -q '^password-env = "FRONT_DOOR_PASSWORD"$' "$TMP/cams.toml"
grep -q '^uri = "rtsp://camera-user@10.77.0.5:554/stream1"$' "$TMP/cams.toml"
grep -q '^uri = "tutk://admin@HBNASLSCFC1MN4Y9221A"$' "$TMP/cams.toml"
! grep -q "10.77.0.4\"" "$TMP/cams.toml"
# The found Kasa camera streams with the block as written, once its password is set.
set +e
in_client env FRONT_DOOR_PASSWORD=admin "$ROOT/target/debug/homecam" check "$TMP/cams.toml" --timeout 10 > "$TMP/check.txt" 2>&1
set -e
cat "$TMP/check.txt"
grep -q "5 camera(s), configuration valid" "$TMP/check.txt"
grep -q "^front-door: ok" "$TMP/check.txt"
grep -q '^garden: FAILED: camera "garden": $GARDEN_PASSWORD is not set' "$TMP/check.txt"
LAN
echo "scan script: ok"
