# A webhook receiver for the e2e tests: receiver.py PORT OUT appends one JSON
# line per POST to OUT: {"path", "valid" (the Standard Webhooks signature
# checked with $HOOK_SECRET, null when unsigned), "body"}; POST /fail
# answers 500 with a body the controller must never echo.
import base64, hashlib, hmac, http.server, json, os, sys
port, out = int(sys.argv[1]), sys.argv[2]
secret = os.environ.get("HOOK_SECRET", "")
key = base64.b64decode(secret[len("whsec_"):]) if secret else b""
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/fail":
            text = b"SECRET-BODY-TEXT"
            self.send_response(500)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        mid, ts = self.headers.get("webhook-id"), self.headers.get("webhook-timestamp")
        sig = self.headers.get("webhook-signature")
        valid = None
        if sig is not None:
            mac = hmac.new(key, mid.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256).digest()
            valid = sig == "v1," + base64.b64encode(mac).decode()
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "valid": valid, "body": json.loads(body)}) + "\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
