CREATE TABLE "dispatch_messages" (
	"dispatch_id" bigint NOT NULL,
	"token" bigint NOT NULL,
	"seq" integer NOT NULL,
	"kind" text NOT NULL,
	"body" jsonb NOT NULL,
	CONSTRAINT "dispatch_messages_dispatch_id_token_seq_pk" PRIMARY KEY("dispatch_id","token","seq")
);
--> statement-breakpoint
CREATE TABLE "dispatches" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"task_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"mode" text NOT NULL,
	"server" text NOT NULL,
	"assignment" jsonb NOT NULL,
	"state" text NOT NULL,
	"owner" text NOT NULL,
	"claimed_by" text,
	"token" bigint,
	"cancel_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_at" timestamp with time zone,
	"done_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "replicas" (
	"id" text PRIMARY KEY NOT NULL,
	"url" text,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"version" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"stopped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "run_commands" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"action" text NOT NULL,
	"options" jsonb NOT NULL,
	"requested_by" text NOT NULL,
	"state" text NOT NULL,
	"outcome" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"done_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "dispatch_messages" ADD CONSTRAINT "dispatch_messages_dispatch_id_dispatches_id_fk" FOREIGN KEY ("dispatch_id") REFERENCES "public"."dispatches"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dispatches" ADD CONSTRAINT "dispatches_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_commands" ADD CONSTRAINT "run_commands_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dispatches_attempt" ON "dispatches" USING btree ("run_id","task_id","attempt","mode");--> statement-breakpoint
CREATE INDEX "dispatches_server_state" ON "dispatches" USING btree ("server","state","id");--> statement-breakpoint
CREATE INDEX "dispatches_claimed_by" ON "dispatches" USING btree ("claimed_by","state");--> statement-breakpoint
CREATE INDEX "run_commands_run_state" ON "run_commands" USING btree ("run_id","state");