# Muster: the `muster` CLI, which runs as `muster server` (an orchestrator replica) or
# `muster agent` (one per server). Built from this checkout; see docker-compose.yml.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
# `npm ci` builds dist/ (the prepare script); then only runtime dependencies are kept.
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# Script steps run through sh and common tools; tini reaps the processes steps leave behind.
RUN apt-get update && apt-get install -y --no-install-recommends tini ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
ENV NODE_ENV=production MUSTER_STATE_DIR=/var/lib/muster
RUN mkdir -p /var/lib/muster && chown node:node /var/lib/muster
USER node
EXPOSE 7070
ENTRYPOINT ["tini", "--", "node", "/app/bin/muster.js"]
CMD ["server", "--host", "0.0.0.0", "--port", "7070"]
