"""The action runtime of the function image: Apache OpenWhisk's action protocol, Python stdlib only.

    python3 ow_runtime.py --socket PATH [--port N] [--output-files] [--rundir DIR --daemon-pid PID --ready-file PATH]
    sh ow_entry.sh RUNDIR ROOT --socket PATH [--port N]        (with Ephemera)

It answers ``POST /init`` and ``POST /run`` exactly as an OpenWhisk action container does
(apache/openwhisk docs/actions-new.md; the Python and Go runtimes' proxies):

* ``/init`` ``{"value": {"name", "main", "code", "binary", "env"}}`` loads the action once. ``code``
  is Python source, or with ``binary: true`` a base64 zip whose entry point is ``__main__.py``;
  ``main`` names the function (default ``main``); ``env`` values go into the environment. A second
  ``/init`` gets 403. An action that cannot be loaded gets 502 with ``{"error": ...}``.
* ``/run`` ``{"value", "namespace", "action_name", "activation_id", "transaction_id", "deadline",
  ...}`` exports every key but ``value`` as ``__OW_<KEY>``, calls ``main(value)`` and answers 200 with
  its dict (or list). An exception is 502 ``{"error": str(exc)}`` with the traceback on stderr.
* After every activation the sentinel ``XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX`` goes to stdout and
  stderr, so the host can cut the container's log stream into activations.
* With ``--output-files`` the process's stdout and stderr (the action's, and every program's it
  starts) go to ``action.stdout`` and ``action.stderr`` in ``--rundir`` once the runtime serves,
  instead of to the container's output: the node agent reads them there, at the sentinel, without
  the engine's log path (docs/ARCHITECTURE.md, node agent, "An activation's output through a file").

The action runs in this process, the function's own: the runtime adds no resident process of its
own beyond the function, as OpenWhisk's Python runtime does with its one long-lived interpreter.

With Ephemera the container's command is ``ow_entry.sh``: it starts ``ephemerad`` for the instance
(its budget follows the container's memory cgroup) in the background and execs this program with
``libephemera.so`` preloaded and the scratch root (``/tmp``) managed, so one interpreter starts, and
every action and every program it starts reads and writes its scratch files from memory. The
interpreter boots while the daemon does; it waits for the daemon's ready line (``--ready-file``)
before it serves. The daemon's ``control.sock`` lies in ``--rundir``, which the node agent
bind-mounts from the host to resize the instance.

The agent reaches the runtime on ``--socket``, a unix socket in the same bind-mounted directory:
the function containers have no network at all (``NetworkMode: none``), so a TCP port in the
container would be unreachable from the host. ``--port`` also listens on TCP inside the container
for an image used with a networked engine.
"""

import argparse
import base64
import binascii
import http.server
import importlib.util
import io
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import traceback
import zipfile

SENTINEL = "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
READY_TIMEOUT_S = 15.0
ACTION_DIR = "/action"
MAX_BODY = 48 * 1024 * 1024  # OpenWhisk's largest action code plus its base64 overhead.


def fail(msg):
    print(f"ow_runtime: {msg}", file=sys.stderr, flush=True)
    sys.exit(97)


# --- boot: wait for the daemon that ow_entry.sh started beside us ----------------------------

def wait_for_daemon(a):
    """Returns once the daemon wrote its ready line to --ready-file; fails within READY_TIMEOUT_S.

    The daemon boots while this interpreter does, so the line is usually there at the first look;
    until it is, the file is looked at every half millisecond, and the daemon's death is seen by
    reaping it (it is our child: ow_entry.sh exec'd us). Nothing may touch the managed root before
    this returns: the shim attaches to the daemon at its first managed operation, and one that
    finds no daemon passes everything through for the rest of the process's life.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        try:
            with open(a.ready_file, "rb") as f:
                if b"\n" in f.read(64):
                    # Gone once read: a container started again never mistakes it for its daemon's.
                    os.unlink(a.ready_file)
                    return
        except FileNotFoundError:
            pass
        pid, status = os.waitpid(a.daemon_pid, os.WNOHANG)
        if pid != 0:
            fail(f"ephemerad exited with status {os.waitstatus_to_exitcode(status)} before it was ready; see {a.rundir}/daemon.log")
        if time.monotonic() > deadline:
            try:
                os.kill(a.daemon_pid, signal.SIGKILL)
            except OSError:
                pass
            fail(f"ephemerad was not ready within {READY_TIMEOUT_S:.0f} s; see {a.rundir}/daemon.log")
        time.sleep(0.0005)


# --- the action ------------------------------------------------------------------------------

class InitError(Exception):
    """The action cannot be loaded; the message goes back to the caller."""


class Action:
    def __init__(self):
        self.main = None
        self.lock = threading.Lock()

    def init(self, value):
        if not isinstance(value, dict):
            raise InitError("the /init body must be {\"value\": {...}} with the action's code")
        code = value.get("code")
        if not isinstance(code, str) or code == "":
            raise InitError("Missing main/no code to execute.")
        name = value.get("main") or "main"
        if not isinstance(name, str):
            raise InitError(f"main must be a string naming the function, got {json.dumps(name)}")
        env = value.get("env") or {}
        if not isinstance(env, dict):
            raise InitError(f"env must be an object of strings, got {json.dumps(env)[:100]}")
        os.makedirs(ACTION_DIR, exist_ok=True)
        if value.get("binary") is True:
            entry = self.unzip(code)
        else:
            entry = os.path.join(ACTION_DIR, "main__.py")
            with open(entry, "w", encoding="utf-8") as f:
                f.write(code)
        for k, v in env.items():
            os.environ[str(k)] = v if isinstance(v, str) else json.dumps(v)
        sys.path.insert(0, os.path.dirname(entry))
        os.chdir(os.path.dirname(entry))
        try:
            spec = importlib.util.spec_from_file_location("main__", entry)
            module = importlib.util.module_from_spec(spec)
            sys.modules["main__"] = module
            spec.loader.exec_module(module)
        except Exception as ex:
            traceback.print_exc(file=sys.stderr)
            raise InitError(f"the action failed to load: {type(ex).__name__}: {ex}")
        fn = getattr(module, name, None)
        if not callable(fn):
            raise InitError(f"the action has no function named {json.dumps(name)}")
        self.main = fn

    @staticmethod
    def unzip(code):
        try:
            data = base64.b64decode(code, validate=True)
        except (binascii.Error, ValueError) as e:
            raise InitError(f"binary code is not valid base64: {e}")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for n in z.namelist():
                    if n.startswith("/") or ".." in n.split("/"):
                        raise InitError(f"the zip holds an entry outside its own tree: {n}")
                z.extractall(ACTION_DIR)
        except zipfile.BadZipFile as e:
            raise InitError(f"binary code is not a zip file: {e}")
        entry = os.path.join(ACTION_DIR, "__main__.py")
        if not os.path.isfile(entry):
            raise InitError("the zip file has no __main__.py at its top level")
        return entry

    def run(self, body):
        """Returns (status, result)."""
        for k, v in body.items():
            if k != "value":
                os.environ["__OW_" + k.upper()] = v if isinstance(v, str) else json.dumps(v)
        args = body.get("value", {})
        try:
            result = self.main(args)
        except Exception as ex:
            traceback.print_exc(file=sys.stderr)
            return 502, {"error": str(ex)}
        if isinstance(result, (dict, list)):
            try:
                json.dumps(result)
            except (TypeError, ValueError) as e:
                return 502, {"error": f"The action returned a result that is not JSON: {e}"}
            return 200, result
        return 502, {"error": f"The action did not return a dictionary (it returned {type(result).__name__})."}


def end_of_activation():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.write(SENTINEL + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


# --- HTTP ------------------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    action = None  # set in serve()

    def log_message(self, fmt, *args):
        # The container's stdout and stderr are the action's logs: nothing of the server's own.
        pass

    def reply(self, status, obj):
        data = (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise ValueError(f"request body of {n} bytes is over the {MAX_BODY}-byte limit")
        raw = self.rfile.read(n) if n > 0 else b""
        obj = json.loads(raw or b"{}")
        if not isinstance(obj, dict):
            raise ValueError("the request body must be a JSON object")
        return obj

    def do_GET(self):
        if self.path == "/health":
            self.reply(200, {"ok": True, "initialized": self.action.main is not None})
        else:
            self.reply(404, {"error": f"no route GET {self.path}"})

    def do_POST(self):
        if self.path not in ("/init", "/run"):
            self.reply(404, {"error": f"no route POST {self.path}; the action protocol has /init and /run"})
            return
        try:
            body = self.body()
        except (ValueError, UnicodeDecodeError) as e:
            self.reply(400, {"error": f"bad request: {e}"})
            return
        with self.action.lock:
            if self.path == "/init":
                self.init(body)
            else:
                self.run(body)

    def init(self, body):
        if self.action.main is not None:
            print("Cannot initialize the action more than once.", file=sys.stderr, flush=True)
            self.reply(403, {"error": "Cannot initialize the action more than once."})
            return
        try:
            self.action.init(body.get("value"))
        except InitError as e:
            status = 403 if str(e) == "Missing main/no code to execute." else 502
            self.reply(status, {"error": str(e)})
            return
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        self.reply(200, {"ok": True})

    def run(self, body):
        if self.action.main is None:
            self.reply(403, {"error": "no action has been initialized yet; POST /init first"})
            return
        try:
            status, result = self.action.run(body)
        finally:
            end_of_activation()
        self.reply(status, result)


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    # A thread per connection: the node agent keeps one connection open per container, and a
    # /health probe or a direct client must not wait for it to close. Action.lock still runs one
    # /init or /run at a time.
    daemon_threads = True

    def get_request(self):
        conn, _ = super().get_request()
        # BaseHTTPRequestHandler logs and formats a client address; a unix peer has none.
        return conn, ("unix", 0)


def output_to_files(rundir):
    """Points fds 1 and 2 at action.stdout and action.stderr in the run directory (appended to).

    Opened before the socket listens, so they exist once /health answers; O_APPEND keeps every
    writer (threads, child processes) at the end. A failure here is the container's to report, on
    its original output, before it serves.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, name in ((1, "action.stdout"), (2, "action.stderr")):
        path = os.path.join(rundir, name)
        try:
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as e:
            fail(f"cannot open {path} for the action's output: {e}; --output-files needs a writable --rundir")
        os.dup2(f, fd)
        os.close(f)


def serve(a):
    if a.output_files:
        output_to_files(a.rundir)
    # Not a tty: Python would buffer the action's prints past the sentinel.
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    Handler.action = Action()
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    servers = [UnixServer(a.socket, Handler)]
    os.chmod(a.socket, 0o600)
    if a.port is not None:
        servers.append(http.server.ThreadingHTTPServer(("0.0.0.0", a.port), Handler))

    def stop(signum, frame):
        shutdown_daemon(a)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


def shutdown_daemon(a):
    """Ends the instance's daemon (discarding scratch files) and reaps it; bounded."""
    if a.daemon_pid is None:
        return
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(os.path.join(a.rundir, "control.sock"))
            s.sendall(b'{"v": 1, "id": 1, "op": "shutdown", "mode": "discard"}\n')
            s.recv(65536)
    except OSError:
        try:
            os.kill(a.daemon_pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(a.daemon_pid, os.WNOHANG)
        except ChildProcessError:
            return
        if pid != 0:
            return
        time.sleep(0.02)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--socket", required=True, help="unix socket to serve /init and /run on")
    p.add_argument("--port", type=int, help="also listen on this TCP port (inside the container)")
    p.add_argument("--rundir", default="/run/ephemera")
    p.add_argument("--output-files", action="store_true",
                   help="write stdout and stderr to action.stdout and action.stderr in --rundir once serving")
    p.add_argument("--daemon-pid", type=int, help="ephemerad's pid (ow_entry.sh passes it)")
    p.add_argument("--ready-file", help="the file ephemerad writes its ready line to (ow_entry.sh)")
    a = p.parse_args()
    if (a.daemon_pid is None) != (a.ready_file is None):
        fail("--daemon-pid and --ready-file go together (ow_entry.sh passes both); run ow_entry.sh for Ephemera")
    if a.ready_file is not None:
        wait_for_daemon(a)
    serve(a)


if __name__ == "__main__":
    main()
