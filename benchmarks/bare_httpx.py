"""The baseline: a bare python + httpx script sending the same signed Gemini cancel-all.

Usage: python benchmarks/bare_httpx.py BASE_URL  (key and secret from
BENCH_API_KEY / BENCH_API_SECRET). This is the floor cancelctl's start-up is
measured against: interpreter start, httpx import, sign, send.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

import httpx

path = "/v1/order/cancel/all"
payload = json.dumps({"request": path, "nonce": str(time.time_ns() // 1_000_000)}, separators=(",", ":"))
b64 = base64.b64encode(payload.encode()).decode()
sig = hmac.new(os.environ["BENCH_API_SECRET"].encode(), b64.encode(), hashlib.sha384).hexdigest()
headers = {
    "Content-Type": "text/plain",
    "Content-Length": "0",
    "Cache-Control": "no-cache",
    "X-GEMINI-APIKEY": os.environ["BENCH_API_KEY"],
    "X-GEMINI-PAYLOAD": b64,
    "X-GEMINI-SIGNATURE": sig,
}
with httpx.Client() as client:
    r = client.post(sys.argv[1] + path, headers=headers)
sys.exit(0 if r.status_code == 200 else 1)
