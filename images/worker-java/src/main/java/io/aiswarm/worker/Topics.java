package io.aiswarm.worker;

/** The MQTT topic names of docs/protocol.md for one worker. */
public record Topics(String prefix, String workerId) {

    private String own(String leaf) {
        return prefix + "/workers/" + workerId + "/" + leaf;
    }

    public String register() {
        return own("register");
    }

    public String heartbeat() {
        return own("heartbeat");
    }

    public String status() {
        return own("status");
    }

    public String tasks() {
        return own("tasks");
    }

    public String logs() {
        return prefix + "/logs";
    }
}
