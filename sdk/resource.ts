import * as pulumi from "@pulumi/pulumi";

/**
 * The base of the library's resources: a dynamic resource registered without the JavaScript stack
 * traces Pulumi's SDK takes for its own debugging.
 *
 * For every input property the SDK makes several promises and captures `new Error().stack` for
 * each, kept only for PULUMI_DEBUG_PROMISE_LEAKS; with the source-map support Pulumi's Node.js
 * runtime installs, formatting those stacks was the largest part of a 1,000-user program's CPU
 * (bench:scale profiles). They are skipped while our resources register, unless that variable
 * asks for them. What Pulumi records of the program is unchanged: it takes each resource's source
 * position with its own stack-trace limit, and an error thrown while registering gets its stack
 * back from here.
 */
export abstract class LbhostingResource extends pulumi.dynamic.Resource {
  constructor(
    provider: pulumi.dynamic.ResourceProvider,
    name: string,
    props: pulumi.Inputs,
    opts: pulumi.CustomResourceOptions | undefined,
    type: string,
  ) {
    const limit = Error.stackTraceLimit;
    if (!process.env.PULUMI_DEBUG_PROMISE_LEAKS) Error.stackTraceLimit = 0;
    try {
      super(provider, name, props, opts, "lbhosting", type);
    } catch (error) {
      Error.stackTraceLimit = limit;
      if (error instanceof Error) Error.captureStackTrace(error, LbhostingResource);
      throw error;
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}
