#!/usr/bin/env bash
# Renders every template at 203, 300 and 600 dpi for the example orders, draws each ZPL with an
# independent renderer (npm zpl-renderer-js, a WASM build of zebrash) and decodes the drawing
# with zxing-cpp (PyPI), the strictest decoder: every symbol's bytes must equal the payload
# coi-agent meant. Also decodes coi-agent's own PNG previews with zxing-cpp.
#
# zebrash mis-draws an explicit code-set switch (>5) inside ^BC (see DEPENDENCIES.md), so for
# its drawing only each ^BC field is given in automatic mode with the payload as data; the
# explicit-set field coi-agent sends is checked by the proptests that read it back, and the
# modules coi-agent draws from the same plan are checked here on its own PNG.
#
# Usage: scripts/check-labels-independent.sh   (needs node/npm and python3/pip; installs the two
# packages into a cache directory on first use)
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${COI_LABEL_CHECK_CACHE:-/var/tmp/coi-agent-label-check}"
mkdir -p "$cache/npm" "$cache/out"
if [ ! -d "$cache/npm/node_modules/zpl-renderer-js" ]; then
    (cd "$cache/npm" && npm init -y >/dev/null && npm install --silent zpl-renderer-js >/dev/null)
fi
if [ ! -d "$cache/py" ]; then
    python3 -m venv "$cache/py"
    "$cache/py/bin/pip" install --quiet zxing-cpp pillow
fi
cargo build --release --quiet
agent=target/release/coi-agent
orders=tests/data/example-orders.json
at=2025-06-02T12:14:00Z
manifest="$cache/out/manifest.jsonl"
: >"$manifest"
for coi in CHA999925000042 CHA999925000043; do
    for template in apheresis-bag bag-small sample-tube; do
        for dpi in 203 300 600; do
            stem="$cache/out/$template-$coi-$dpi"
            "$agent" label render --template "$template" --order "$orders" --coi "$coi" \
                --dpi "$dpi" --collected-at "$at" --zpl "$stem.zpl" --png "$stem.png" \
                --json 2>/dev/null |
                python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); d["stem"]=sys.argv[1]; print(json.dumps(d))' "$stem" \
                    >>"$manifest"
        done
    done
done
# Independent rendering of each ZPL.
NODE_PATH="$cache/npm/node_modules" node - "$manifest" <<'JS'
const fs = require("node:fs");
const { ready } = require("zpl-renderer-js");
(async () => {
  const { api } = await ready;
  for (const line of fs.readFileSync(process.argv[2], "utf8").trim().split("\n")) {
    const label = JSON.parse(line);
    const dpmm = label.dpi / 25.4;
    const code128 = label.symbols.filter((s) => s.format === "code128");
    let i = 0;
    const zpl = fs.readFileSync(label.stem + ".zpl", "utf8").replace(
      /\^BCN,(\d+),N,N,N,N\^FD[^^]*\^FS/g,
      (_, height) => `^BCN,${height},N,N,N,A^FD${code128[i++].data}^FS`,
    );
    if (i !== code128.length) throw new Error(`${label.stem}: ${i} ^BC fields for ${code128.length} symbols`);
    const png = await api.zplToBase64Async(zpl, label.width / dpmm, label.height / dpmm, Math.round(dpmm));
    fs.writeFileSync(label.stem + ".zebrash.png", Buffer.from(png, "base64"));
  }
})();
JS
"$cache/py/bin/python" - "$manifest" <<'PY'
import json, sys
import zxingcpp
from PIL import Image

formats = {"code128": zxingcpp.BarcodeFormat.Code128, "data_matrix": zxingcpp.BarcodeFormat.DataMatrix}
failures = checked = 0
for line in open(sys.argv[1]):
    label = json.loads(line)
    for source in ("png", "zebrash.png"):
        image = Image.open(f"{label['stem']}.{source}").convert("L")
        found = [(r.format, r.bytes) for r in zxingcpp.read_barcodes(image)]
        for symbol in label["symbols"]:
            checked += 1
            want = (formats[symbol["format"]], symbol["data"].encode())
            if want not in found:
                failures += 1
                print(f"FAIL {label['template']} {label['dpi']} dpi ({source}): {symbol['symbol']} "
                      f"{symbol['data']!r} not read; read {[b for _, b in found]}")
print(f"{checked} symbols checked, {failures} failures")
sys.exit(1 if failures else 0)
PY
