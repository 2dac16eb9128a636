# syntax=docker/dockerfile:1
# kube-event-rules — production image. Node 24 LTS (the runtime CI also tests), production
# dependencies only, non-root numeric user, works with a read-only root filesystem.

ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Compile TypeScript; bundle the rule playground's page (dist/web/playground).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json vite.config.ts ./
COPY src ./src
COPY web ./web
RUN npx tsc -p tsconfig.build.json && npx vite build

# Production dependencies from the lockfile, without install scripts.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Runtime: no npm, no compiler, no sources.
FROM ${NODE_IMAGE}
RUN rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
      /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /opt/yarn* /usr/local/bin/yarn /usr/local/bin/yarnpkg
ENV NODE_ENV=production RULES_DIR=/app/rules
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./package.json
COPY bin ./bin
COPY rules/hpa-sender-compat.yaml ./rules/hpa-sender-compat.yaml
COPY examples/events ./examples/events
USER 65532:65532
EXPOSE 8080
# GC on the event-loop thread: on a pod's couple of cores the concurrent GC threads stall the event loop
# (p99 13–20 ms at 1,000 events/s, ≈ 5 ms without them: docs/performance.md). --expose-gc lets start-up
# compact the heap once after loading the rules (src/service.ts). V8 flags Node does not accept in
# NODE_OPTIONS, hence here; heap sizes stay in the Deployment's NODE_OPTIONS.
ENTRYPOINT ["node", "--single-threaded-gc", "--expose-gc", "dist/main.js"]
CMD ["serve"]
