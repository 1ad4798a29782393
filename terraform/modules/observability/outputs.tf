output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "alarm_names" {
  description = "Alarm names by purpose."
  value = {
    embed_throttles    = aws_cloudwatch_metric_alarm.embed_throttles.alarm_name
    executions_failed  = aws_cloudwatch_metric_alarm.executions_failed.alarm_name
    embed_p95_duration = aws_cloudwatch_metric_alarm.embed_p95_duration.alarm_name
  }
}

output "query_definition_names" {
  description = "Saved Logs Insights query names by query key."
  value       = { for key, query in aws_cloudwatch_query_definition.this : key => query.name }
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the alarms notify (null without alarm_email)."
  value       = var.alarm_email == null ? null : aws_sns_topic.alarms[0].arn
}
