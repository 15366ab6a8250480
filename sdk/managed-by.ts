import * as pulumi from "@pulumi/pulumi";

/**
 * The owner mark a resource leaves on the objects it creates: its project, stack and name. A create
 * that finds an object with the same mark is a retry and may proceed; any other needs `adopt`.
 */
export function managedBy(resourceName: string): string {
  return `pulumi:${pulumi.getProject()}/${pulumi.getStack()}/${resourceName}`;
}
