# The prediction service of one slot. The model is not baked in: the service reads the
# slot's model version from the registry under $ITSACAT_HOME (mount it as a volume, or set
# ITSACAT_REGISTRY_URL to a PostgreSQL registry), and swaps when the slot changes.
#
#   docker build -t itsacat .
#   docker run -p 8000:8000 -v "$PWD/.itsacat:/var/lib/itsacat" itsacat
#   docker run -p 8080:8080 -v "$PWD/.itsacat:/var/lib/itsacat" itsacat \
#       serve --slot green --host 0.0.0.0 --port 8080
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ITSACAT_HOME=/var/lib/itsacat

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install . && useradd --system --create-home --home-dir /home/itsacat itsacat \
    && mkdir -p "$ITSACAT_HOME" && chown itsacat "$ITSACAT_HOME"

USER itsacat
VOLUME ["/var/lib/itsacat"]
EXPOSE 8000 8080

# The service binds 0.0.0.0 inside the container only; publish the port to choose who
# reaches it. Orchestrators should probe GET /readyz (200 once a model is loaded).
ENTRYPOINT ["itsacat"]
CMD ["serve", "--slot", "blue", "--host", "0.0.0.0", "--port", "8000"]
