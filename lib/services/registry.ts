/**
 * The server's services, and the one table from message type to service
 * that the session dispatches on. Adding a service is a new file in this
 * folder (see service.ts), its import here and its line in SERVICES.
 *
 * @module
 */

import { callService } from "./calls.ts";
import { chatService } from "./chat/service.ts";
import { downloadService } from "./transfer/download_service.ts";
import { pingService } from "./ping.ts";
import { requestService } from "./requests.ts";
import type { Service } from "./service.ts";
import { uploadService } from "./transfer/upload_service.ts";

/** Every service a server runs, in the order their connections close. */
export const SERVICES: readonly Service[] = [
  requestService,
  callService,
  uploadService,
  downloadService,
  chatService,
  pingService,
];

/** Which service handles each message type a client may send. */
export const SERVICE_BY_TYPE: ReadonlyMap<number, Service> = byType(SERVICES);

/** The table; two services claiming one type is a bug, caught at load. */
export function byType(services: readonly Service[]): Map<number, Service> {
  const table = new Map<number, Service>();
  for (const service of services) {
    for (const type of service.types) {
      const taken = table.get(type);
      if (taken) throw new Error(`Message type ${type} is both ${taken.name} and ${service.name}`);
      table.set(type, service);
    }
  }
  return table;
}
