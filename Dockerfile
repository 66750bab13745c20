# camsweep as a headless sensor: scans only the targets you name on its command line, stores the results
# in /var/lib/camsweep, writes reports to /srv/reports. docs/install.md has the run, systemd and cron recipes.
#
#   docker build -t camsweep .
#   docker run --rm --network host --cap-drop ALL --cap-add NET_RAW --cap-add NET_ADMIN \
#       -v camsweep:/var/lib/camsweep -v /srv/reports:/srv/reports \
#       camsweep scan 192.0.2.0/24 --site hq --quiet --report html:/srv/reports/hq.html --fail-on restricted
#
# Host networking: ARP and multicast discovery need the host's own interfaces; NET_RAW for ARP/ICMP,
# NET_ADMIN for choosing the interface. Nothing else is granted.

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scanner ./scanner
COPY fingerprints ./fingerprints
COPY tui ./tui
RUN pip wheel --no-cache-dir --no-deps -w /dist .

FROM python:3.11-slim
LABEL org.opencontainers.image.title="camsweep" \
      org.opencontainers.image.description="Find restricted-brand cameras on networks you name (headless sensor)"
COPY --from=build /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist \
    && mkdir -p /var/lib/camsweep /srv/reports
ENV CAMSWEEP_DB=/var/lib/camsweep/camsweep.db \
    PYTHONDONTWRITEBYTECODE=1
VOLUME ["/var/lib/camsweep", "/srv/reports"]
WORKDIR /var/lib/camsweep
ENTRYPOINT ["camsweep"]
CMD ["--help"]
