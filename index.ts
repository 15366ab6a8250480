/** pulumi-lbhosting: load-balanced web hosting as code. */
export * from "./sdk";
