"""The language kits end to end, as a newcomer follows the README: for each
of Rust, Python, JavaScript and C, `ferrymail plugin new` -> `make` ->
`ferrymail plugin check` -> `ferrymail plugin test` with the generated
transcript, then the kit's example plugin (plugins/kits/<lang>/example:
RCPT refuses trap*, DATA stamps X-Kit and counts messages in kv) built in
the same project, tested with plugins/kits/example.transcript and loaded
in a live server that refuses and stamps mail over smtplib.

Toolchains (.ci/run installs them): Rust with wasm32-wasip2, python3-venv
(componentize-py from PyPI), Node.js 20.19+ and npm (componentize-js from
npm), clang, lld, wasi-libc and the wasm32 builtins (wasm-tools from PyPI). Downloads are cached in
KIT_CACHE across runs: cargo's target dir, one componentize-py venv, npm's
and pip's own caches.
"""

import os
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT, binary

ALICE = "alice@localhost"
CHAIN = ["example", "auth", "local", "relay", "vrfy-expn", "retry"]
KIT_CACHE = Path(tempfile.gettempdir()) / "ferrymail-e2e-kit-cache"
# The example replaces the stub file `plugin new` wrote.
EXAMPLE_SOURCE = {
    "rust": ("example/lib.rs", "src/lib.rs"),
    "python": ("example/app.py", "app.py"),
    "js": ("example/plugin.js", "plugin.js"),
    "c": ("example/plugin.c", "plugin.c"),
}
BUILD_TIMEOUT = 900
# What each kit's `make` runs, and the Debian packages .ci/run installs for
# it: a missing tool fails the test (CI should have installed it), never
# skips it. (Rust's toolchain is the one building ferrymail itself.)
TOOLS = {
    "rust": {"cargo": "rustup (https://rustup.rs), then rustup target add wasm32-wasip2"},
    "python": {"python3": "python3 python3-venv"},
    "js": {"node": "nodejs npm", "npm": "nodejs npm"},
    "c": {"clang": "clang libclang-rt-14-dev-wasm32", "wasm-ld": "lld", "python3": "python3 python3-venv"},
}
C_SYSROOT_LIBC = Path("/usr/lib/wasm32-wasi/libc.a")  # Debian's wasi-libc


def build_env(lang: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRYMAIL_")}
    KIT_CACHE.mkdir(parents=True, exist_ok=True)
    if lang == "rust":
        # Never the server's own target dir (CI exports it): a kit project is
        # a separate workspace with its own lock file.
        env["CARGO_TARGET_DIR"] = str(KIT_CACHE / "rust-target")
    if lang in ("python", "c"):
        env.setdefault("PIP_CACHE_DIR", str(KIT_CACHE / "pip"))
    if lang == "js":
        env.setdefault("npm_config_cache", str(KIT_CACHE / "npm"))
    return env


def require_toolchain(lang: str) -> None:
    missing = [f"{tool} (Debian: {pkgs})" for tool, pkgs in TOOLS[lang].items() if shutil.which(tool) is None]
    if lang == "c" and not C_SYSROOT_LIBC.is_file():
        missing.append(f"{C_SYSROOT_LIBC} (Debian: wasi-libc)")
    if lang == "js" and shutil.which("node"):
        version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
        if (major, minor) < (20, 19):
            missing.append(f"Node.js 20.19+ for componentize-js, not {version} (npm install -g node@20)")
    if missing:
        pytest.fail(f"the {lang} kit needs: {', '.join(missing)} (.ci/run installs them)", pytrace=False)


def run(args, cwd: Path, env: dict | None = None, timeout: float = BUILD_TIMEOUT) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("lang", ["rust", "python", "js", "c"])
def test_kit_new_build_check_test_and_serve(lang, make_server, tmp_path):
    require_toolchain(lang)
    fm = binary()
    env = build_env(lang)
    run([fm, "plugin", "new", "example", "--lang", lang, "--hooks", "rcpt,data"], cwd=tmp_path, env=env)
    project = tmp_path / "example"

    # The project as generated builds and loads with no edits.
    run(["make"], cwd=project, env=env)
    checked = run([fm, "plugin", "check", "example.wasm"], cwd=project, env=env)
    assert "hooks: rcpt, data" in checked or "hooks: data, rcpt" in checked, checked
    assert "ok: loads on this host" in checked, checked
    # ... and meets its own sample transcript.
    tested = run([fm, "plugin", "test", "example.wasm", "--transcript", "example.transcript"], cwd=project, env=env)
    assert "decided-by local" in tested, tested

    # The kit's example, built in the same project.
    src, dest = EXAMPLE_SOURCE[lang]
    shutil.copy(ROOT / "plugins" / "kits" / lang / src, project / dest)
    run(["make"], cwd=project, env=env)
    run([fm, "plugin", "check", "example.wasm"], cwd=project, env=env)
    shutil.copy(ROOT / "plugins" / "kits" / "example.transcript", project / "kit.transcript")
    run([fm, "plugin", "test", "example.wasm", "--transcript", "kit.transcript"], cwd=project, env=env)

    srv = make_server(config={
        "plugins": {"example": {"path": str(project / "example.wasm")}},
        "chain": CHAIN,
    }, start=False)
    # The first start compiles the component (seconds for Python and JS,
    # whose components carry an interpreter; cached afterwards).
    srv.start(timeout=300)
    with srv.smtp() as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            s.sendmail("a@example.org", ["trap@localhost"], "Subject: hi\r\n\r\nhello\r\n")
        code, text = refused.value.recipients["trap@localhost"]
        assert (code, text) == (550, b"5.7.1 No spamtraps here"), (code, text)
        s.sendmail("a@example.org", [ALICE], "Subject: one\r\n\r\nfirst\r\n")
        s.sendmail("a@example.org", [ALICE], "Subject: two\r\n\r\nsecond\r\n")
    stamps = sorted(line for msg in srv.mailbox(ALICE) for line in msg.split(b"\r\n") if line.startswith(b"X-Kit:"))
    assert stamps == [f"X-Kit: {lang}; messages=1".encode(), f"X-Kit: {lang}; messages=2".encode()], stamps



def test_c_kit_a_returned_literal_fails_the_call_as_memory_md_says(tmp_path):
    """MEMORY.md rule 3, as it describes it: a string returned to the host is
    freed by the bindings after the host read it, so it must come from
    malloc. A literal (plugin_string_set) compiles and passes `plugin check`
    (types only), but free() of it traps in every call, the failure policy
    answers 451, and `plugin test` shows it."""
    require_toolchain("c")
    fm = binary()
    env = build_env("c")
    run([fm, "plugin", "new", "example", "--lang", "c", "--hooks", "rcpt,data"], cwd=tmp_path, env=env)
    project = tmp_path / "example"
    source = (ROOT / "plugins" / "kits" / "c" / "example" / "plugin.c").read_text()
    right = "    plugin_string_dup(&r->text, text);\n"
    assert source.count(right) == 1, "the example no longer returns a malloc'd copy as MEMORY.md shows"
    (project / "plugin.c").write_text(source.replace(right, "    plugin_string_set(&r->text, text);\n"))
    run(["make"], cwd=project, env=env)
    run([fm, "plugin", "check", "example.wasm"], cwd=project, env=env)

    shutil.copy(ROOT / "plugins" / "kits" / "example.transcript", project / "kit.transcript")
    proc = subprocess.run([fm, "plugin", "test", "example.wasm", "--transcript", "kit.transcript"], cwd=project,
                          env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    # The refusal the plugin meant to send becomes the failure policy's 451.
    assert "- < 550 5.7.1 No spamtraps here" in out and "+ < 451" in out, out
