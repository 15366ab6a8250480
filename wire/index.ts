/**
 * The wire contract between the provider (and the `lbhosting` commands) and the agents, compiled
 * into both packages: field rules, replicated records, request bodies, answers, write headers and
 * the load balancer's routes. Not part of the SDK's public API.
 */
export * from "./fields";
export * from "./records";
export * from "./tls";
export * from "./requests";
export * from "./responses";
export * from "./balancer";
export * from "./access";
export * from "./write-answer";
export * from "./canonical-json";
export * from "./timeouts";
