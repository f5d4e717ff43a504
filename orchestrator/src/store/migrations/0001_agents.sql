CREATE TABLE "task_leases" (
	"run_id" text NOT NULL,
	"task_id" text NOT NULL,
	"token" bigint NOT NULL,
	"attempt" integer NOT NULL,
	"mode" text NOT NULL,
	"agent_id" text NOT NULL,
	"server" text NOT NULL,
	"state" text NOT NULL,
	"granted_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "task_leases_run_id_task_id_pk" PRIMARY KEY("run_id","task_id")
);
--> statement-breakpoint
ALTER TABLE "agents" ADD COLUMN "epoch" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "task_leases_agent_state" ON "task_leases" USING btree ("agent_id","state");--> statement-breakpoint
CREATE INDEX "agents_server" ON "agents" USING btree ("server");