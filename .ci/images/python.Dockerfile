# Debian's python3, standing in for python:*-slim (the todo app's Dockerfile starts FROM one)
# in the tests of the devops agent's isolated engine.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
