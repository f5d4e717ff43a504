CREATE TABLE "agents" (
	"id" text PRIMARY KEY NOT NULL,
	"server" text NOT NULL,
	"status" text NOT NULL,
	"version" text,
	"last_heartbeat_at" timestamp with time zone NOT NULL,
	"connected_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "attempts" (
	"run_id" text NOT NULL,
	"task_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"status" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	"failure" jsonb,
	CONSTRAINT "attempts_run_id_task_id_attempt_pk" PRIMARY KEY("run_id","task_id","attempt")
);
--> statement-breakpoint
CREATE TABLE "checkpoints" (
	"run_id" text NOT NULL,
	"number" integer NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"event_seq" integer NOT NULL,
	"completed_operations" jsonb NOT NULL,
	"completed_tasks" jsonb NOT NULL,
	CONSTRAINT "checkpoints_run_id_number_pk" PRIMARY KEY("run_id","number")
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"seq" integer NOT NULL,
	"type" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"operation_id" text,
	"task_id" text,
	"data" jsonb
);
--> statement-breakpoint
CREATE TABLE "operations" (
	"run_id" text NOT NULL,
	"id" text NOT NULL,
	"position" integer NOT NULL,
	"level" integer NOT NULL,
	"status" text NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "operations_run_id_id_pk" PRIMARY KEY("run_id","id")
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"status" text NOT NULL,
	"workflow" jsonb NOT NULL,
	"plan" jsonb NOT NULL,
	"labels" jsonb NOT NULL,
	"idempotency_key" text,
	"error" text,
	"checkpoint" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"lease_owner" text,
	"lease_token" bigint DEFAULT 0 NOT NULL,
	"lease_expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "servers" (
	"name" text PRIMARY KEY NOT NULL,
	"provider" text NOT NULL,
	"status" text NOT NULL,
	"address" text,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"run_id" text NOT NULL,
	"id" text NOT NULL,
	"operation_id" text NOT NULL,
	"position" integer NOT NULL,
	"queue" text NOT NULL,
	"status" text NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"attempt_base" integer DEFAULT 0 NOT NULL,
	"not_before" timestamp with time zone,
	"finished_seq" bigint,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"result" jsonb,
	"failure" jsonb,
	"compensated" boolean DEFAULT false NOT NULL,
	CONSTRAINT "tasks_run_id_id_pk" PRIMARY KEY("run_id","id")
);
--> statement-breakpoint
ALTER TABLE "operations" ADD CONSTRAINT "operations_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "attempts_run" ON "attempts" USING btree ("run_id");--> statement-breakpoint
CREATE UNIQUE INDEX "events_run_seq" ON "events" USING btree ("run_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "runs_idempotency_key" ON "runs" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "runs_status_created" ON "runs" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "tasks_queue_status" ON "tasks" USING btree ("queue","status");