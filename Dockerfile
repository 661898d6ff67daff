# The deployment worker, and the bluegreen CLI beside it, from one build: the build stage compiles
# src/ to dist/ (the same dist/ the npm package ships) and bundles the workflows once, so the worker
# neither transpiles at start nor runs webpack (seconds of start-up, and resident memory: see
# docs/RESULTS.md, bench:kubernetes). No TypeScript runs in the image.
# The base image: Node.js 22 on Debian bookworm. The public image by default; where no registry is
# reachable, the one scripts/images/base.sh makes locally (--build-arg BASE=localhost/node-base:22-bookworm).
ARG BASE=node:22-bookworm-slim
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the build compiles TypeScript and bundles the workflows, and needs none of the
# native modules the tests use (better-sqlite3 would compile here, with a toolchain the base lacks).
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/bundle-workflows.ts ./scripts/
RUN npm run build && node --import tsx scripts/bundle-workflows.ts --out dist/workflow-bundle.js

FROM ${BASE}
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# bin/ runs dist/ when there is no src/ beside it, as in the installed package.
COPY bin ./bin
ENV BLUEGREEN_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
# The node user (uid 1000 in both bases) by number: deploy/worker runs with runAsNonRoot, which the
# kubelet can only verify for a numeric user (with `USER node` it refuses to start the container).
USER 1000:1000
# Prometheus metrics of the worker (BLUEGREEN_METRICS_ADDRESS).
EXPOSE 9464
CMD ["node", "bin/bluegreen-worker.js"]
