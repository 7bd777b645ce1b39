# The engine (`ivr serve`: the API, the telephony worker, the console) for operators. Build from
# the repository's root (compose.yaml does): `docker build .`. Configured from the IVR_*
# environment (.env; docs/deploy.md, Containers); it migrates its database when it starts.
#
# BASE: Debian 12. Where no registry is reachable, a root file system imported with
# `podman import` (tests/helpers/containers.py imports a debootstrap of bookworm).
ARG BASE=docker.io/library/debian:bookworm-slim
FROM ${BASE}

# The tools the engine runs: ffmpeg (transcoding), sox and espeak-ng (prompts, TTS), lame (MP3).
# apt runs as root (APT::Sandbox::User): a root without CAP_DAC_OVERRIDE cannot use _apt's folders.
RUN set -eu; apt="apt-get -q -o APT::Sandbox::User=root"; \
    $apt update && DEBIAN_FRONTEND=noninteractive $apt install -y --no-install-recommends \
      python3 python3-venv ca-certificates ffmpeg sox lame espeak-ng; \
    apt-get clean; rm -rf /var/lib/apt/lists/*; \
    useradd --system --home-dir /app --shell /usr/sbin/nologin ivr

# The pinned versions of requirements.lock for the project's own dependencies (not the dev
# extra): this layer is rebuilt only when the lock or pyproject.toml changes.
# PIP_CERT (optional): a CA bundle for pip where a proxy re-signs TLS.
ARG PIP_CERT
COPY pyproject.toml requirements.lock /app/
RUN set -eu; if [ -n "${PIP_CERT:-}" ]; then export PIP_CERT; else unset PIP_CERT; fi; \
    python3 -m venv /opt/venv; \
    deps=$(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("/app/pyproject.toml", "rb"))["project"]["dependencies"]))'); \
    /opt/venv/bin/pip install -q --no-cache-dir --disable-pip-version-check \
      -c /app/requirements.lock $deps

COPY ivr /app/ivr
COPY prompts /app/prompts
ENV PATH=/opt/venv/bin:$PATH PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IVR_DATA_DIR=/app/var IVR_NICE=0
WORKDIR /app
RUN mkdir -p /app/var && chown ivr:ivr /app/var
VOLUME ["/app/var"]
USER ivr
ENTRYPOINT ["python", "-m", "ivr"]
CMD ["serve"]
