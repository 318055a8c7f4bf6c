# billops worker and ingress image (docker-compose.yml builds it for both; the default command runs the worker).
FROM node:20-bookworm-slim

WORKDIR /app

# The npm used in development: it honours package.json's allowScripts, so install scripts run as they do there.
RUN npm install -g npm@11.19.1 && npm cache clean --force

COPY package.json package-lock.json ./
# Development dependencies stay: the processes run TypeScript through tsx.
RUN npm ci --no-audit --no-fund && npm cache clean --force

COPY . .

# State a process keeps (DECISIONS.log, ...) lives under BILLOPS_DATA_DIR; compose mounts a volume there.
RUN mkdir -p /data && chown node:node /data
ENV NODE_ENV=production \
    BILLOPS_DATA_DIR=/data
USER node

EXPOSE 8080
CMD ["node", "--import", "tsx", "workers/main.ts"]
