# mcpd for the production-shaped stack (docker-compose.yml). Not buildable on the
# development machine (it has no registry to pull node:20 from); there `npm start`
# runs mcpd from the host's node instead.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY images ./images
COPY bench ./bench
COPY tests ./tests
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    MCPD_DATA_DIR=/data \
    MCPD_HOST=127.0.0.1 \
    MCPD_PORT=7400
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The example specs mcpd applies on its first start (MCPD_SEED_EXAMPLES=false skips them).
COPY examples ./examples
VOLUME /data
EXPOSE 7400
# The worker bundles workflows/ from dist at start; mcpd talks to the Docker engine
# through the socket mounted at /var/run/docker.sock.
CMD ["node", "dist/src/main.js"]
