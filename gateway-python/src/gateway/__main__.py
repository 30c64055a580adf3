# `python -m gateway`: reads the environment and serves the app (see gateway.main.run).
from gateway.main import run

if __name__ == "__main__":
    run()
