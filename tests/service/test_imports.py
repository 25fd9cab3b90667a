import subprocess
import sys


def test_importing_service_and_cli_touches_no_torch_or_db() -> None:
    code = (
        "import sys, service, service.cli.main\n"
        "bad = [m for m in ('torch', 'transformers', 'sqlalchemy') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
