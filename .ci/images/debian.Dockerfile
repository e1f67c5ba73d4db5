# The debootstrapped Debian minbase plus the CA certificates of the machine that made it, so
# that builds behind a TLS-inspecting egress proxy can download.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY certs/ /usr/local/share/ca-certificates/
RUN update-ca-certificates >/dev/null
