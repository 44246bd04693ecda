# The data-streamer image of docker-compose.yml: the CLI as entrypoint
# (`docker run data-streamer run --config ...`). Two stages: build with the dev
# dependencies, run with the production ones only.
#
# chDB (in-process ClickHouse, about 540 MB) is an optional dependency left out by
# default: distributed mode stores to a ClickHouse server. For the embedded commands
# (demo, replay, query) build with --build-arg WITH_CHDB=1.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: `prepare` would build before the sources are here, and no
# dependency needs one (chDB's native library comes as a prebuilt package).
RUN npm ci --no-audit --no-fund --ignore-scripts --omit=optional
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY connectors ./connectors
COPY replay ./replay
COPY load-tests ./load-tests
COPY schemas ./schemas
RUN npm run build

FROM node:20-slim
ARG WITH_CHDB=0
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts --omit=dev $([ "$WITH_CHDB" = 1 ] || echo --omit=optional) \
    && npm cache clean --force
COPY --from=build /app/dist ./dist
# What the code reads at run time besides dist (package.json "files").
COPY schemas ./schemas
COPY src/reference/catalog ./src/reference/catalog
COPY src/storage/migrations ./src/storage/migrations
COPY src/api/dashboard/public ./src/api/dashboard/public
# Mount points owned by the runtime user, so that named volumes start writable.
RUN mkdir -p /data /shared && chown node:node /data /shared
USER node
ENTRYPOINT ["node", "--max-semi-space-size=32", "/app/dist/src/cli/main.js"]
CMD ["--help"]
