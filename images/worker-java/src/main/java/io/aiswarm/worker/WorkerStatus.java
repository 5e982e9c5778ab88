package io.aiswarm.worker;

import java.util.Locale;

/** The status values of the status and heartbeat payloads. */
public enum WorkerStatus {
    IDLE, BUSY, OFFLINE;

    public String wireName() {
        return name().toLowerCase(Locale.ROOT);
    }
}
