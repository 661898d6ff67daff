# The deployment worker. Workflows are bundled at start from src/; TypeScript runs through tsx.
FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
USER node
# Prometheus metrics of the worker (BLUEGREEN_METRICS_ADDRESS).
EXPOSE 9464
CMD ["node", "--import", "tsx", "src/worker/main.ts"]
