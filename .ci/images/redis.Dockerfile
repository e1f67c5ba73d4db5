# Debian's redis-server, standing in for the official redis image: the compose file and the
# tests start redis-server with their own arguments.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /data
CMD ["redis-server", "--protected-mode", "no"]
